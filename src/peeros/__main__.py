from peeros.cli import main

main()
