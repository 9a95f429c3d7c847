"""Fleet scale: many bags (open loop) or many closed-loop rollouts, on one process or a Ray cluster.

``inputs`` resolves bags, directories, globs and manifests; ``units`` defines a work unit (a picklable callable run
on a worker that holds a loaded model, returning a JSON-able result) and ``rollouts`` the simulator's (one scenario
and seed, on a worker holding the node driver; ``ros_domains`` gives a DDS worker a domain of its own);
``executor`` runs units serially and defines the executor protocol, ``ray_executor`` runs them on Ray actors;
``results`` and ``rollout_results`` merge what comes back into the single-machine outputs; ``gates`` compares with a
baseline run; ``flags`` holds the shared flags, ``command`` the shared run and ``alpamayo-ros evaluate``'s entry,
``sim_command`` ``alpamayo-ros sim``'s.
"""
