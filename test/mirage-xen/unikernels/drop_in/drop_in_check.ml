module Flow = Vchan_rs_xen
