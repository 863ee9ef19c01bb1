from privindex.cli import main

main()
