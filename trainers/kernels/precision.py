"""The fused robust kernel's precisions: a setting's values, so torch-free (settings load in
commands that never import torch)."""

from __future__ import annotations

import enum

# units of rounding of the operand splits (ours: round to nearest)
U_TF32 = 2.0 ** -11          # an fp32 value rounded to tf32 (10 stored mantissa bits)
U_BF16 = 2.0 ** -8           # an fp32 value rounded to bf16 (7 stored mantissa bits)


class Precision(str, enum.Enum):
    """How the fused pass multiplies layers 2 and 3."""

    IEEE = "ieee"        # fp32 FMA units: the fp32 path up to summation order, no certificate
    TF32X3 = "tf32x3"    # a = hi + lo in tf32, three tensor-core products, fp32 accumulation
    BF16X3 = "bf16x3"    # the same split in bf16

    @property
    def unit(self) -> float:
        return {Precision.TF32X3: U_TF32, Precision.BF16X3: U_BF16}.get(self, 0.0)

    @property
    def certified(self) -> bool:
        """Whether its values need the certificate (a tensor-core variant)."""
        return self is not Precision.IEEE
