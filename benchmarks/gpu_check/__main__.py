import sys

from benchmarks.gpu_check.run import main

sys.exit(main())
