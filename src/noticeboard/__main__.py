from noticeboard.cli import main

raise SystemExit(main())
