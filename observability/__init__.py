"""What Prometheus scrapes and alerts on and Grafana shows, derived from a checked stack config.

`plan` reads the config into the servers and services to watch; from that plan come the
exporter's custom queries (`queries`), the scrape configuration (`scrape`), recording and alert
rules (`rules`) and Grafana dashboards (`dashboards`); `files` lays them out as files. Nothing
here creates resources: the stacks put these where each platform's Prometheus and Grafana find
them (files on Docker, ConfigMaps and custom resources on Kubernetes).
"""
from .plan import MonitoredServer, MonitoredService, MonitoringPlan, plan

__all__ = ["MonitoredServer", "MonitoredService", "MonitoringPlan", "plan"]
