from fewlabels.cli import main

raise SystemExit(main())
