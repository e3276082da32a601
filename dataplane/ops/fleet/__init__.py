"""Fleet operations through terraform: deploy, plan, drift, rollout, adopt, destroy, state."""
