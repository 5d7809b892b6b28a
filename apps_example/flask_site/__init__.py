"""The example Flask app hosted on flask.localhost: app = "flask_site.app:app"."""
