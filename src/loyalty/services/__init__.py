"""Use cases. Each public function is one transaction: load, decide with the domain, save."""
