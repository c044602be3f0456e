<?php

declare(strict_types=1);

namespace Grconnect\Exception;

/** grconnect gave no answer: the connection failed, was cut or timed out. */
final class TransportException extends \RuntimeException implements GrconnectException
{
}
