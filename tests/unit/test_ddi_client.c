/* ddi_client: which URLs the agent may use, and where the token goes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abota/ddi_client.h"

static struct hawkbit_config *cfg_of(const char *client_extra)
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "[client]\nhawkbit_server=hb.example.com:8443\ntarget_name=dev1\n"
		 "auth_token=secret\nstream_bundle=true\n%s\n[device]\na=b\n",
		 client_extra);
	struct hawkbit_config *c = NULL;
	struct abota_error err = { 0 };
	if (hawkbit_config_parse(text, strlen(text), "t.conf", &c, &err) < 0)
		fail_msg("%s", err.msg);
	return c;
}

static void check(struct ddi_client *c, const char *url, int kind, int expect)
{
	struct abota_error err = { 0 };
	int ret = ddi_client_check_url(c, url, kind, &err);
	if (ret != expect)
		fail_msg("%s (kind %d): %d, expected %d (%s)", url, kind, ret, expect, err.msg);
}

static void test_urls(void **state)
{
	(void)state;
	struct hawkbit_config *cfg = cfg_of("allowed_download_hosts=cdn.example.com;files.example.com:9000");
	struct ddi_client *c = NULL;
	struct abota_error err = { 0 };
	assert_int_equal(ddi_client_new(cfg, &c, &err), 0);
	assert_string_equal(ddi_client_base_url(c),
			    "https://hb.example.com:8443/DEFAULT/controller/v1/dev1");
	check(c, "https://hb.example.com:8443/DEFAULT/controller/v1/dev1/deploymentBase/1", 0, 0);
	check(c, "https://HB.example.com:8443/x", 0, 0);          /* host case-insensitive */
	check(c, "https://hb.example.com/x", 0, -EPERM);          /* other port */
	check(c, "http://hb.example.com:8443/x", 0, -EPERM);      /* downgrade with ssl=true */
	check(c, "https://evil.example.com:8443/x", 0, -EPERM);
	check(c, "https://cdn.example.com/a.raucb", 0, -EPERM);   /* not for REST */
	check(c, "https://cdn.example.com/a.raucb", 1, 0);        /* any port without one given */
	check(c, "https://cdn.example.com:444/a.raucb", 1, 0);
	check(c, "https://files.example.com:9000/a", 1, 0);
	check(c, "https://files.example.com:9001/a", 1, -EPERM);
	check(c, "https://hb.example.com:8443@evil.com/a", 1, -EPERM); /* userinfo trick */
	check(c, "ftp://hb.example.com:8443/a", 1, -EPERM);
	check(c, "not a url", 1, -EINVAL);
	/* streaming: the token goes only to the server itself */
	struct http_opts h;
	ddi_client_http_opts(c, "https://hb.example.com:8443/x/artifacts/a", &h);
	assert_non_null(h.headers);
	assert_string_equal(h.headers[0], "Authorization: TargetToken secret");
	assert_null(h.headers[1]);
	ddi_client_http_opts(c, "https://cdn.example.com/a", &h);
	assert_null(h.headers);
	ddi_client_free(c);
	hawkbit_config_free(cfg);
	/* send_download_authentication=false: no token on downloads */
	cfg = cfg_of("send_download_authentication=false");
	assert_int_equal(ddi_client_new(cfg, &c, &err), 0);
	ddi_client_http_opts(c, "https://hb.example.com:8443/x/artifacts/a", &h);
	assert_null(h.headers);
	ddi_client_free(c);
	hawkbit_config_free(cfg);
	/* plain http allowed with ssl=false */
	cfg = cfg_of("ssl=false");
	assert_int_equal(ddi_client_new(cfg, &c, &err), 0);
	check(c, "http://hb.example.com:8443/x", 0, 0);
	check(c, "https://hb.example.com/x", 0, -EPERM); /* https default port 443 */
	ddi_client_free(c);
	hawkbit_config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_urls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
