"""astroflow's deployments (``prefect.yaml``), shipped with the package as
``astroflow.deployments`` so that ``astroflow serve`` finds them from any install (a wheel,
the Docker image), not only from a checkout."""
