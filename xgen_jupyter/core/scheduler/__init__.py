"""One endpoint for every model on the box: the catalog, load on first request, fair queues per
server and eviction by memory. Core tier: used by the Jupyter proxy in-process (and meant for the
box service); nothing here imports Jupyter."""
