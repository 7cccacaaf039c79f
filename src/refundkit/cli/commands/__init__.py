"""The command families; each module registers its commands on ``refundkit.cli._app.cli``."""
