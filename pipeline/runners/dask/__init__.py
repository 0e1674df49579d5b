"""Beam's DaskRunner, completed for Nightwatch's batch and replay graph (`runner.NightwatchDaskRunner`)."""
