"""Fleet-scale evaluation: many bags (later: many closed-loop rollouts) on one process or a Ray cluster.

``inputs`` resolves bags, directories, globs and manifests; ``units`` defines a work unit (a picklable callable run
on a worker that holds a loaded model, returning a JSON-able result); ``executor`` runs units serially and defines
the executor protocol, ``ray_executor`` runs them on Ray actors; ``results`` merges what comes back into the
single-machine outputs; ``gates`` compares with a baseline run; ``command`` wires it into ``alpamayo-ros evaluate``.
"""
