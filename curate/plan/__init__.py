"""Planning: source tables -> example plans (no pixels). Entry point: :func:`curate.plan.mixture.plan_mixture`."""
