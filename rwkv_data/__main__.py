"""``python -m rwkv_data`` runs the ``rwkv-data`` command line."""

from rwkv_data.cli import main

if __name__ == "__main__":
    main()
