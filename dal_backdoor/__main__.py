from dal_backdoor.cli import main

main()
