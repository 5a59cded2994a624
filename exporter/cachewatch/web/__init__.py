"""HTTP: the routing of the endpoints (``routes``), /metrics (``metrics``), /probe
(``probe``), basic auth (``auth``), and the hardened server that serves them (``httpd``,
``server``)."""
