"""What every package of drosweep uses and none owns: atomic, durable writes and the check that
a folder can be written (atomic.py), and `InputError`, the base of every refusal of bad input
(errors.py).

It imports no other package of drosweep, so every package may import it.
"""
