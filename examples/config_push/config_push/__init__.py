"""config_push: push configurations to network devices, instrumented with netauto-statsd."""
