from drosweep.cli import main

raise SystemExit(main())
