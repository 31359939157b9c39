"""Connection of a cooperative to the platform (J4, J5): the agreement, the domain, provisioning, the API."""
