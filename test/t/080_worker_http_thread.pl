# 010_worker.pl again, with the worker's HTTP client on a thread of its own
# (s2s_tracking.http_thread = on): sending, caps changed by a reload (the thread takes the
# new options), SIGTERM with requests hanging (given back, the thread stopped and joined).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../perl";

# loaded now, not by the file run below: their INIT blocks must run at this file's start
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::Cluster;
use S2S::Node;

$ENV{S2S_HTTP_THREAD} = 'on';
my $file = "$FindBin::RealBin/010_worker.pl";
do $file;
die "$file: $@" if $@;
