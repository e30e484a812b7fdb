"""Suite-wide pytest set-up: the lab fixtures come from privsep's public testing plugin."""

pytest_plugins = ["privsep.testing.pytest_plugin"]
