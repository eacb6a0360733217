"""Protocol rules shared by the endpoints: the scope catalogue and RFC 8707 resource comparison."""
