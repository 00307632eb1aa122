"""A package that extends astroflow without touching it: an image source
(:mod:`.listing`), a repository backend (:mod:`.vault`) and a recipe with its own QC metric
(:mod:`.recipes`), found through entry points that :func:`.install.plugins_installed` puts
on ``sys.path``, as ``pip install`` of such a package would."""
