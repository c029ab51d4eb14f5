/*
 * backend_stubs.c
 *		Link-time stand-ins for the backend symbols that src/swaarm_click.c references
 *		outside its JSON parser, for fuzz_swaarm_json only.
 *
 * The target includes swaarm_click.c whole to reach its static parser; the rest of that
 * file (SPI, latches, ereport, the HTTP client) is never called by the target, but the
 * linker still wants its symbols. Each function here aborts if ever called; the types do
 * not matter to the linker, and no header is included so that they cannot clash. When
 * swaarm_click.c starts to use another backend symbol, the link fails and names it: add
 * it below (functions) or to the variables.
 */
#include <stdlib.h>

#define STUB(name) void name(void); void name(void) { abort(); }
#define VAR(name) char name[64];

VAR(CurrentMemoryContext)
VAR(InterruptPending)
VAR(MyLatch)
VAR(PG_exception_stack)
VAR(SPI_processed)
VAR(SPI_tuptable)
VAR(error_context_stack)
VAR(s2s_allow_http)
VAR(s2s_connect_timeout_ms)
VAR(s2s_request_timeout_ms)
VAR(s2s_allow_link_local)

STUB(DirectFunctionCall1Coll)
STUB(GetCurrentTimestamp)
STUB(MemoryContextStrdup)
STUB(ProcessInterrupts)
STUB(ResetLatch)
STUB(SPI_connect)
STUB(SPI_execute_with_args)
STUB(SPI_finish)
STUB(SPI_getbinval)
STUB(SPI_getvalue)
STUB(SPI_result_code_string)
STUB(s2s_network_policy)
STUB(s2s_redact_copy)
STUB(WaitLatchOrSocket)
STUB(cstring_to_text)
STUB(errcode)
STUB(errdetail)
STUB(errfinish)
STUB(errhint)
STUB(errmsg)
STUB(errmsg_internal)
STUB(errstart_cold)
STUB(http_client_create)
STUB(http_client_destroy)
STUB(http_client_set_options)
STUB(http_next_result)
STUB(http_process)
STUB(http_result_release)
STUB(http_submit)
STUB(http_timeout_ms)
STUB(http_wait_fd)
STUB(network_host)
STUB(pg_detoast_datum_packed)
STUB(pg_re_throw)
STUB(text_to_cstring)
