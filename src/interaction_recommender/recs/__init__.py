"""Serving recommendations: the model a process serves (registry.py), hydration and the list
cache (hydration.py), the request flow with its budget and fallbacks (service.py) and the routes.
The engine itself lives in model/."""
