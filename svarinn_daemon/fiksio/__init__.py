"""A Fiks IO client: KS's message exchange between public bodies' systems, in Python.

- ``messages.py``: the records and their wire forms (the send API's metadata and answer, a
  delivered message's AMQP headers, the catalogue's public key); pure.
- ``asice.py``: the ASiC-E container a payload travels in (written and read streaming).
- ``crypto.py``: the payload's CMS encryption to the receiver's certificate, and decryption
  with our account's key (the daemon's own streaming CMS code, SvarUt's parameters).
- ``client.py``: the REST side: send a message, look up an account's certificate.
- ``receive.py``: the AMQP side: read our account's queue with manual acknowledgements,
  reconnecting, the token inside the password renewed before it expires.

Nothing here knows about letters, archives or the ledger: the ``fiks-arkiv`` adapter uses it.
"""
