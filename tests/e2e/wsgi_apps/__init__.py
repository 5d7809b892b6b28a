"""WSGI apps the wsgi handler's tests serve: plain PEP 3333 apps, a Flask app, a Django project."""
