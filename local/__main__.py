from local.stack import main

raise SystemExit(main())
