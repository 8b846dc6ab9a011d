# The cases of make test-xen per domU type, in order (sourced by cases.sh
# in the guests and by scripts/test-xen.sh, which expects an "ok" line from
# each side for each). "destroy" ends a list: dom0 destroys the domU in it.
# A case named with a number at its end runs the function without it.
CASES_pv="sane1 kill_c sane2 kill_server sane3 kill_client sane4
  cat_d0srv_send cat_d0srv_recv cat_dusrv_send cat_dusrv_recv proxy_c
  api_d0srv api_dusrv ocaml_readme two_domains waiting_message timing rings_c_cli
  rings_c_srv sane5 destroy"
CASES_pvh="cat_d0srv_send cat_dusrv_recv proxy_c rings_c_srv api_dusrv
  kill_server destroy"
