"""Inbound mail: ``parse`` reads an arriving message (MIME bytes or Postmark's JSON) into
one ``ParsedMessage``; ``receive`` delivers it to this server's mailboxes."""
