"""python -m tools.gpu_check: see the package's docstring."""

from tools.gpu_check.run import main

raise SystemExit(main())
