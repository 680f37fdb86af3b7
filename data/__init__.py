"""The project's data files (vocabularies, queries, metadata, samples).

Installed as the package ``cryokb_data`` so that a wheel carries them: read them
through :func:`path`, never through ``__file__`` arithmetic elsewhere.
"""

from importlib.resources import files


def path(name):
    """Return a Traversable for the data file ``name`` (e.g. ``"pubmed_query.toml"``)."""
    return files(__name__).joinpath(name)
