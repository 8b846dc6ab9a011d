# The cases of make test-xen per domU type, in order (sourced by cases.sh
# in the guests and by scripts/test-xen.sh, which expects an "ok" line from
# each side for each). "destroy" ends a list: dom0 destroys the domU in it.
CASES_pv="cat_d0srv_send cat_d0srv_recv cat_dusrv_send cat_dusrv_recv
  proxy_c api_d0srv api_dusrv ocaml_readme waiting_message
  kill_server kill_client timing rings_c_cli rings_c_srv destroy"
CASES_pvh="cat_d0srv_send cat_dusrv_recv proxy_c rings_c_srv api_dusrv
  kill_server destroy"
