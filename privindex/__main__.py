from privindex.cli import main

if __name__ == "__main__":  # not when a worker process (reading.py's pool) imports it
    main()
