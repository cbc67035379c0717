"""``python -m vae_search``: the same as the ``vae-search`` command."""

from vae_search.cli import main

if __name__ == "__main__":
    main()
