"""`python -m privsep.sandbox FD`: the exec helper (spawn uses a faster `-S -c` form)."""

from privsep.sandbox._helper import main

main()
