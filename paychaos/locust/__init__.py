"""The Locust face: the plugin the locustfile installs, and the web UI tabs."""
