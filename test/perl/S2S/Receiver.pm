# S2S::Receiver: starts and drives test/receiver/receiver.py from TAP tests.
#
#   my $r = S2S::Receiver->start();          # or start(host => '::1')
#   $r->port; $r->url;                       # "http://127.0.0.1:PORT"
#   $r->behave(status => 503, times => 3, retry_after => '2', path_prefix => '/postback');
#   my $reqs = $r->requests;                 # arrayref of {method, path, query, headers,
#                                            #   body, time, connection, http_version}
#   my $reqs = $r->wait_requests(10);        # polls until 10 requests arrived (bounded)
#   $r->count;                               # requests recorded so far (cheap)
#   S2S::Receiver::header($req, 'x-ae-d-ip'); S2S::Receiver::query_params($req)->{cids};
#   $r->stats; $r->reset; $r->stop;
#   my $r = S2S::Receiver->attach($url);     # drive a receiver started by someone else (a
#                                            #   driver script spanning several tests)
#
# The receiver is stopped (SIGTERM, then SIGKILL, and waited for) by stop(), when the object
# goes away, and at the end of the test script, so no test leaves one running.
package S2S::Receiver;

use strict;
use warnings;
use Carp;
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken);
use Time::HiRes qw(sleep time);

my $SCRIPT = File::Spec->catfile(dirname(__FILE__), '..', '..', 'receiver', 'receiver.py');
my %LIVE;    # pid => object, for END

sub start
{
	my ($class, %opt) = @_;
	my $host = $opt{host} // '127.0.0.1';
	my $dir = tempdir('s2s_receiver_XXXXXX', TMPDIR => 1, CLEANUP => 1);
	my $port_file = "$dir/port";
	my @cmd = ('python3', $SCRIPT, '--port-file', $port_file, '--host', $host);
	push @cmd, '--verbose' if $opt{verbose};

	my $pid = fork();
	croak "fork failed: $!" unless defined $pid;
	if ($pid == 0)
	{
		exec(@cmd) or do { print STDERR "exec python3 failed: $!\n"; POSIX::_exit(127); };
	}

	my $port;
	my $deadline = time() + 30;
	while (time() < $deadline)
	{
		if (-s $port_file && open(my $fh, '<', $port_file))
		{
			my $line = <$fh>;
			close $fh;
			if (defined $line && $line =~ /^(\d+)/) { $port = $1; last; }
		}
		if (waitpid($pid, WNOHANG) == $pid)
		{
			croak "test receiver exited at start (status $?)";
		}
		sleep(0.05);
	}
	unless ($port)
	{
		kill 'KILL', $pid;
		waitpid($pid, 0);
		croak "test receiver did not start within 30 s";
	}

	my $self = bless {
		pid => $pid,
		owner => $$,
		host => $host,
		port => $port,
		dir => $dir,
		http => HTTP::Tiny->new(timeout => 30, keep_alive => 0),
	}, $class;
	$LIVE{$pid} = $self;
	weaken($LIVE{$pid});
	return $self;
}

# attach(URL): drives a receiver that another process started and will stop (e.g. one
# shared by the two halves of test/dump_restore); this object never stops it.
sub attach
{
	my ($class, $url) = @_;
	my ($host, $port) = $url =~ m{^http://\[?([^\]/]+?)\]?:(\d+)/?$}
	  or croak "attach: not a receiver URL: $url";
	my $self = bless {
		pid => undef,
		attached => 1,
		owner => $$,
		host => $host,
		port => $port,
		http => HTTP::Tiny->new(timeout => 30, keep_alive => 0),
	}, $class;
	$self->stats;    # croaks unless it answers
	return $self;
}

sub port { $_[0]{port} }
sub host { $_[0]{host} }
sub pid { $_[0]{pid} }

# The base URL, without a trailing slash: "http://127.0.0.1:PORT" or "http://[::1]:PORT".
sub url
{
	my $self = shift;
	my $h = $self->{host} =~ /:/ ? "[$self->{host}]" : $self->{host};
	return "http://$h:$self->{port}";
}

sub _control
{
	my ($self, $method, $path, $data) = @_;
	croak "test receiver is stopped" unless $self->{pid} || $self->{attached};
	my %args;
	if (defined $data)
	{
		$args{content} = encode_json($data);
		$args{headers} = { 'Content-Type' => 'application/json' };
	}
	my $res = $self->{http}->request($method, $self->url . $path, \%args);
	croak "test receiver $method $path: $res->{status} $res->{reason} $res->{content}"
	  unless $res->{success};
	return $res->{content};
}

# Sets how the next requests are answered; see receiver.py for the keys.
sub behave
{
	my ($self, %b) = @_;
	$self->_control('POST', '/__behave', \%b);
	return $self;
}

sub reset
{
	my $self = shift;
	$self->_control('POST', '/__reset');
	return $self;
}

# Every recorded request (control paths excluded), oldest first. With path => '/x', only
# those whose path is exactly /x.
sub requests
{
	my ($self, %f) = @_;
	my $all = decode_json($self->_control('GET', '/__requests'));
	return $all unless defined $f{path};
	return [ grep { $_->{path} eq $f{path} } @$all ];
}

sub stats
{
	my $self = shift;
	return decode_json($self->_control('GET', '/__stats'));
}

# Polls (the cheap request count) until at least $n requests were recorded or $timeout_s
# (default 60) passed; returns the requests recorded by then (the caller checks the count).
sub wait_requests
{
	my ($self, $n, $timeout_s) = @_;
	my $deadline = time() + ($timeout_s // 60);
	while ($self->stats->{requests} < $n && time() < $deadline)
	{
		sleep(0.05);
	}
	return $self->requests;
}

# The number of requests recorded so far.
sub count
{
	my $self = shift;
	return $self->stats->{requests};
}

# The first value of a header (name case-insensitive), or undef.
sub header
{
	my ($req, $name) = @_;
	for my $h (@{ $req->{headers} })
	{
		return $h->[1] if lc($h->[0]) eq lc($name);
	}
	return undef;
}

sub _unescape
{
	my $s = shift;
	$s =~ tr/+/ /;
	$s =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge;
	return $s;
}

# The query string as [[name, value], ...] in order, percent-decoded (bytes, not decoded
# from UTF-8).
sub query_pairs
{
	my $req = shift;
	my $q = ref $req ? $req->{query} : $req;
	return [] unless defined $q && length $q;
	return [ map { my ($k, $v) = split /=/, $_, 2; [ _unescape($k), _unescape($v // '') ] }
		  split /&/, $q ];
}

# The query string as a hash (the last value wins for a repeated name).
sub query_params
{
	my $req = shift;
	return { map { $_->[0] => $_->[1] } @{ query_pairs($req) } };
}

# Per value of the query parameter id (an Affilae conversion), how many times it was
# received: { id => count }.
sub received_ids
{
	my $self = shift;
	my %n;
	$n{ query_params($_)->{id} }++ for @{ $self->requests };
	return \%n;
}

sub stop
{
	my $self = shift;
	my $pid = $self->{pid};
	return unless $pid && $self->{owner} == $$;
	delete $LIVE{$pid};
	$self->{pid} = undef;
	kill 'TERM', $pid;
	my $deadline = time() + 10;
	while (time() < $deadline)
	{
		return if waitpid($pid, WNOHANG) == $pid;
		sleep(0.05);
	}
	kill 'KILL', $pid;
	waitpid($pid, 0);
	return;
}

sub DESTROY
{
	my $self = shift;
	local ($?, $!, $@);
	$self->stop;
}

END
{
	local $?;
	$_->stop for grep { defined } values %LIVE;
}

1;
