"""Scale-out on a Ray cluster (docs/scale-out.md): a NodeAgent actor per node, placement by memory
fit, and a ClusterManager that mirrors remote servers so the proxy and the panels work unchanged.

Nothing here imports Ray at module level: ``ray`` is imported only when ``c.XGen.cluster`` is set.
"""
