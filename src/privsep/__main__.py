"""`python -m privsep` is the same as the `privsep` console script."""

from privsep._cli import main

raise SystemExit(main())
