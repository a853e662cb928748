from fsmtrader.cli import main

main()
