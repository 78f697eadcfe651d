"""sage-desktop: connect a desktop to Sage Business Cloud Accounting."""

__version__ = "0.1.0"
