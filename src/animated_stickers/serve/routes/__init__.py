"""The HTTP service's routers: animate (and results, stills, progress), health (and info, stats), page."""
