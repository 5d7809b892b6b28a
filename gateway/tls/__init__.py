"""TLS: listeners that speak HTTPS, certificates chosen by SNI, reload on SIGHUP.

- settings.py  the config keys (`listen` tables, a vhost's `tls`), shapes only
- files.py     certificate and key files checked for `gateway check` and serve
- contexts.py  ssl.SSLContexts with modern defaults; the SNI table; reload
- acceptor.py  a TLS listener: accept, peek the first byte (plain HTTP gets a
               400), handshake within header_timeout, then the HTTP core
- serving.py   what the server asks of TLS: which listeners, start, reload, stop

Importing this package is cheap: the config loader imports settings.py.
"""
