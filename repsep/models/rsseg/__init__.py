"""RSSeg's parts (reconstructed): decoupled local pathway, SASM, DCA."""
