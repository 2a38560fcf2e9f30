from vidx.cli import main

raise SystemExit(main())
