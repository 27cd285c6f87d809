from callstream.cli import main

raise SystemExit(main())
