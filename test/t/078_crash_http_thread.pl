# 013_crash.pl again, with the worker's HTTP client on a thread of its own
# (s2s_tracking.http_thread = on): the same crash guarantees, the worker killed with
# kill -9 and the server stopped with -m immediate while the thread has requests in flight.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";

# loaded now, not by the file run below: their INIT blocks must run at this file's start
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::Cluster;
use S2S::Node;

$ENV{S2S_HTTP_THREAD} = 'on';
my $file = "$FindBin::RealBin/013_crash.pl";
do $file;
die "$file: $@" if $@;
